// `tokenformer conformance run SUITE OUT --backend NAME`: our own adapter. It reads a suite through
// the documented format only (suite.json, case.json, inputs.safetensors; never the exporter's case
// builders), runs every case on one backend, and writes a candidate folder (OUT/<case>/
// outputs.safetensors and OUT/candidate.json), which `conformance check` then judges like any
// other implementation's.
// Omits: judging (check.ts) and cases the backend contract has no kernel for (declared
// unsupported in candidate.json, with the reason).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadBackend } from '../../backends/index.ts';
import { writeFileAtomic } from '../../src/atomic.ts';
import { readSafetensors, writeSafetensorsAtomic, type TensorIn } from '../../src/safetensors.ts';
import { writeFolder } from './folder.ts';
import {
  CANDIDATE_FILE, CANDIDATE_FORMAT, FORMAT_VERSION, INPUTS_FILE, OUTPUTS_FILE, onlyMatcher, readCaseJson, readSuiteJson,
  type CandidateJson, type CaseJson,
} from './format.ts';
import { MODEL_RUNNERS } from './run-models.ts';
import { runOpCase, Unsupported, type HostMap, type Outputs } from './run-ops.ts';
import type { Backend, Handle } from '../../src/backend.ts';
import { UserError } from '../../src/errors.ts';

export const CANDIDATE_KIND = { what: 'candidate folder', marker: CANDIDATE_FILE, caseFiles: [OUTPUTS_FILE] } as const;

export async function runCase(be: Backend<Handle>, c: CaseJson, inputs: HostMap): Promise<Outputs> {
  return c.kind === 'op' ? runOpCase(be, c, inputs) : MODEL_RUNNERS[c.kind](be, c, inputs);
}

/**
 * Runs the suite's cases (or those `only` selects) on a backend, by name (loaded and destroyed
 * here) or an instance (the caller's to destroy); writes the candidate folder `out`.
 */
export async function runSuite(
  suite: string, out: string, backend: string | Backend<Handle>, only?: string,
): Promise<{ backend: string; ran: number; unsupported: number }> {
  const s = readSuiteJson(suite);
  const match = onlyMatcher(only);
  const names = s.cases.map((c) => c.name).filter(match);
  if (names.length === 0) throw new UserError(`--only ${JSON.stringify(only)} selects no case of the suite`);
  const be = typeof backend === 'string' ? await loadBackend(backend) : backend;
  const cand: CandidateJson = { format: CANDIDATE_FORMAT, formatVersion: FORMAT_VERSION, implementation: `tokenformer ${be.name} backend`, unsupported: {} };
  let ran = 0;
  try {
    await writeFolder(out, CANDIDATE_KIND, async (staging) => {
      for (const name of names) {
        const c = readCaseJson(suite, name);
        const inputs = readSafetensors(join(suite, name, INPUTS_FILE), 'suite inputs');
        let outputs: Outputs;
        try {
          outputs = await runCase(be, c, inputs);
        } catch (e) {
          if (!(e instanceof Unsupported)) throw e;
          cand.unsupported![name] = e.message;
          continue;
        }
        mkdirSync(join(staging, name));
        const tensors = new Map([...outputs].map(([n, t]): [string, TensorIn] => [n, t]));
        writeSafetensorsAtomic(join(staging, name, OUTPUTS_FILE), tensors, { format: 'pt' });
        ran++;
      }
      writeFileAtomic(join(staging, CANDIDATE_FILE), `${JSON.stringify(cand, null, 1)}\n`);
    });
  } finally {
    if (typeof backend === 'string') await be.destroy();
  }
  return { backend: be.name, ran, unsupported: Object.keys(cand.unsupported!).length };
}
