// Package replay treats the `ratings` log as a recording (docs/replay.md):
//
//   - offsets: rewind or advance a stopped consumer group, dry run by
//     default, refused while the group has members (the contract of
//     kafka-consumer-groups --reset-offsets);
//   - rebuild: stop a stream part, wipe its state, reprocess the log from
//     the beginning and prove the rebuilt state equals the state before;
//   - traffic: re-drive a webserver with the ratings recorded in a window,
//     at the original pace or faster, keeping a ledger like `lab load`;
//   - export/import: a topic range as JSON lines, with keys, values,
//     headers, timestamps and partitions;
//   - fork: a new projection of the log (its own consumer group, broker,
//     processor and view) running beside the live one.
//
// Every command works on a running lab and changes nothing unless asked to.
package replay
