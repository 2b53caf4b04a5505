// Order approval: Python steps, a durable timer, and a manager's approval
// that arrives days later through a resume token (see order_approval.py).
async function main(orderId) {
  const order = await fetch_order(orderId);            // a step: runs once, journaled
  if (order.total > 100) {
    await sleep('1h');                                  // cooling-off period, durable
    const decision = await getApproval('manager', order.total);  // suspends until a token comes back
    if (!decision.approved) return { orderId, status: 'rejected', by: decision.by };
  }
  const receipt = await charge(order);                  // idempotency key per step
  return { orderId, status: 'charged', receipt };
}
