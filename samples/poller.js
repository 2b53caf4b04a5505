// A poller: check a job every 10 minutes. Each run polls at most 3 times, then
// continueAsNew() starts a fresh run (same workflow, empty journal), so a
// poller that lives for months never grows a long journal (see poller.py).
async function main(jobId, polls = 0) {
  for (let i = 0; i < 3; i++) {
    const job = await job_status(jobId);
    polls += 1;
    if (job.done) return { jobId, polls, result: job.result };
    await sleep('10m');
  }
  return continueAsNew(jobId, polls);
}
