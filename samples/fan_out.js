// Fan-out: three async Python steps awaited together run concurrently;
// each result is journaled as it completes (see fan_out.py).
async function main(userId) {
  const [profile, orders, score] = await Promise.all([
    load_profile(userId),
    load_orders(userId),
    credit_score(userId),
  ]);
  return { name: profile.name, orders: orders.length, score };
}
