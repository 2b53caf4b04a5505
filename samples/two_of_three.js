// A 2-of-3 approval in JS alone: three approvers vote, two "yes" votes
// approve, each approver counts once (distinct), and after 3 days without
// enough votes the request expires (default: no exception to catch).
//
//   jsflow run samples/two_of_three.js '{"id": "PR-7", "approvers": ["ann", "bob", "cy"]}' --id pr-7
//   jsflow event pr-7 vote '{"voter": "ann", "yes": true}'
//   jsflow show pr-7          # "waiting for 1 more 'vote' event (have: ann), 1 of 2 received"
//   jsflow event pr-7 vote '{"voter": "bob", "yes": true}'
async function main(request) {
  const votes = await waitForEvents('vote', {
    count: 2,
    distinct: 'voter',
    match: { yes: true },
    schema: { type: 'object', required: ['voter', 'yes'], properties: { voter: { enum: request.approvers } } },
    timeout: '3d',
    default: null,
  });
  if (votes === null) return { id: request.id, status: 'expired' };
  return { id: request.id, status: 'approved', by: votes.map((v) => v.voter) };
}
