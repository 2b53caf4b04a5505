// Started by a schedule: the slot time is the workflow's start time.
function main(kind) {
  return { kind, at: new Date().toISOString() };
}
