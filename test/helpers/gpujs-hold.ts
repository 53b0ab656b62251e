// Test helper, run as a child: loads the backend named by argv[2], runs one kernel and prints
// "ready <name> <result>". Then it waits for a signal (test/gpujs-display.test.ts sends one);
// or with argv[3] = 'reload' destroys the backend, loads the same name again and prints
// "again <name>" or "again-error <message>"; or with argv[3] = 'throw' dies of an uncaught
// error without destroying anything. Omits: any model.

import { loadBackend } from '../../backends/index.ts';

const name = process.argv[2] ?? 'gpujs';
const be = await loadBackend(name);
const t = be.upload(Float32Array.of(1, 2, 3), [3]);
const back = await be.read(be.ops.add(t, t));
process.stdout.write(`ready ${be.name} ${Array.from(back).join(',')}\n`);
if (process.argv[3] === 'reload') {
  await be.destroy();
  try {
    const again = await loadBackend(name);
    process.stdout.write(`again ${again.name}\n`);
    await again.destroy();
  } catch (e) {
    process.stdout.write(`again-error ${(e as Error).message}\n`);
  }
} else if (process.argv[3] === 'throw') {
  throw new Error('boom, with the backend still open');
} else {
  setInterval(() => {}, 1000);
}
