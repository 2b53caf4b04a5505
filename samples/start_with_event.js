// A poll that collects `size` votes; started by its first vote (send_event with start=).
async function main(size) {
  const votes = [];
  while (votes.length < size) votes.push(await waitForEvent('vote'));
  return { votes: votes.length, first: votes[0] };
}
