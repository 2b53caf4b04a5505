// The `make demo` workflow: a JS step, an event with a timeout, a durable
// timer and a manager's approval (a suspend function declared with --suspend).
async function main(orderId) {
  const order = await step('load order', async () => ({ id: orderId, total: 42 }));
  const payment = await waitForEvent('payment', { timeout: '24h' });
  await sleep('1s');
  const approved = await getApproval('manager', order.total);
  return approved ? `order ${orderId} shipped (paid ${payment.amount})` : `order ${orderId} refunded`;
}
