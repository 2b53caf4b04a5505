// A payment race: whichever comes first wins, the payment or a cancellation;
// without either, the payment wait times out after 24 hours.
//
//   jsflow run samples/payment_race.js A-17 --id order-17
//   jsflow event order-17 payment '{"amount": 42}'
async function main(orderId) {
  try {
    return await Promise.race([
      waitForEvent('payment', { timeout: '24h' }).then((p) => ({ orderId, status: 'paid', amount: p.amount })),
      waitForEvent('cancel').then((reason) => ({ orderId, status: 'cancelled', reason })),
    ]);
  } catch (e) {
    if (e.name === 'TimeoutError') return { orderId, status: 'expired' };
    throw e;
  }
}
