// A JS-only approval: no Python needed. createHook() issues a one-time token
// and URL; hook.wait() suspends until someone uses it, or until it expires.
//
//   jsflow run samples/hook_approval.js '{"title": "New laptop", "amount": 1800}'
//   jsflow resume-token <token> '{"approved": true, "by": "ann"}'
async function main(request) {
  const hook = await createHook({ timeout: '2d' });
  console.log(`"${request.title}" needs approval: ${hook.url}`);
  try {
    const answer = await hook.wait();
    return answer.approved ? `approved by ${answer.by}` : `rejected by ${answer.by}`;
  } catch (e) {
    if (e.name === 'TimeoutError') return 'expired: nobody answered in 2 days';
    throw e;
  }
}
