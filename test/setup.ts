// Property tests draw a fresh seed on every local run (and print it on failure). In CI
// (CI=true) the seed is pinned, so a landing never depends on the luck of the draw; set
// FC_SEED to replay or to explore another one.
import fc from 'fast-check';

const pinned = process.env.FC_SEED ?? (process.env.CI ? '20241031' : undefined);
if (pinned !== undefined) fc.configureGlobal({ seed: Number(pinned) });
