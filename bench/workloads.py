"""The workflow scripts the benchmarks share, so every figure measures the same work."""

TEN_STEPS = """
async function main(n) {
  let total = 0;
  for (let i = 0; i < 10; i++) total += await work(n, i);
  return total;
}"""
EVENT_LOOP = """
async function main() {
  let seen = 0;
  for (;;) { await waitForEvent('tick'); seen++; await note(seen); }
}"""
APPROVAL = """
async function main(order) {
  const a = await fetchOrder(order);
  const b = await reserve(a);
  const c = await price(b);
  return await waitForEvent('decision');
}"""
