// node --test reporter: one line per test "STATUS file :: suite > ... > name", then totals.
// Suites (tests with subtests) are not counted, only leaves; a file-level failure
// (e.g. the whole file timing out) is reported as "FAIL file :: <file>".
import path from 'node:path';
export default async function* reporter(source) {
  const stacks = new Map();   // file -> names by nesting
  const hasChild = new Map(); // key -> bool
  const counts = { PASS: 0, FAIL: 0, SKIP: 0 };
  for await (const ev of source) {
    const d = ev.data || {};
    const file = d.file ? path.basename(d.file) : '?';
    if (ev.type === 'test:start') {
      const st = stacks.get(file) || [];
      st.length = d.nesting;
      st[d.nesting] = d.name;
      stacks.set(file, st);
      if (d.nesting > 0) hasChild.set(file + '\u0000' + st.slice(0, d.nesting).join(' > '), true);
    } else if (ev.type === 'test:pass' || ev.type === 'test:fail') {
      const st = stacks.get(file) || [];
      const parts = st.slice(0, d.nesting).concat([d.name]);
      const key = file + '\u0000' + parts.join(' > ');
      const failed = ev.type === 'test:fail';
      // a suite/file that passed is not a test; a failed one is reported only
      // when it failed by itself (timeout, hook error), not because of a child
      if (hasChild.get(key)) {
        if (!failed) continue;
        const fk = d.details && d.details.error && d.details.error.failureType;
        if (fk === 'subtestsFailed') continue;
      }
      let status = failed ? 'FAIL' : 'PASS';
      if (d.skip !== undefined || d.todo !== undefined) status = 'SKIP';
      counts[status]++;
      let line = `${status.padEnd(5)} ${file} :: ${parts.join(' > ')}`;
      if (failed) {
        const e = d.details && d.details.error;
        const msg = e ? String((e.cause && e.cause.message) || e.message || e).split('\n')[0] : '';
        line += `   [${msg.slice(0, 200)}]`;
      }
      yield line + '\n';
    }
  }
  yield `TOTAL pass=${counts.PASS} fail=${counts.FAIL} skip=${counts.SKIP}\n`;
}
