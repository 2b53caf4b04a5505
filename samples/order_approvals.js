// Per-order approvals: one workflow waits for the approval of each of its
// orders. `match` routes an 'approval' event to the wait for its order; an
// approval for another order stays buffered (shown by `jsflow show`) until a
// wait matches it. A reply that is not {order, approved: boolean} is refused.
//
//   jsflow run samples/order_approvals.js '["A-17", "A-18"]' --id batch-1
//   jsflow event batch-1 approval '{"order": "A-18", "approved": true}'
//   jsflow event batch-1 approval '{"order": "A-17", "approved": false}'
const APPROVAL = {
  type: 'object',
  required: ['order', 'approved'],
  properties: { order: { type: 'string' }, approved: { type: 'boolean' } },
};

async function main(orders) {
  const decisions = await Promise.all(
    orders.map((order) =>
      waitForEvent('approval', { match: { order }, schema: APPROVAL, timeout: '7d', default: { order, approved: false } })),
  );
  return Object.fromEntries(decisions.map((d) => [d.order, d.approved ? 'approved' : 'rejected']));
}
