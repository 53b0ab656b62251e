#!/usr/bin/env node
// The `tokenformer` command: runs the TypeScript CLI through tsx, so there is no build step.
// `run` installs the stdout/stderr guards and prints every failure as one line (cli/main.ts).
import { register } from 'tsx/esm/api';

register();
const { run } = await import('../cli/main.ts');
process.exitCode = await run(process.argv);
