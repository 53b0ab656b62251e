// The subcommands beyond forward/grad, each registered by its own module.
import type { Command } from 'commander';
import { registerDemo } from './demo.ts';
import { registerGrow } from './grow.ts';
import { registerTrain } from './train.ts';

export const extraCommands: Array<(program: Command) => void> = [registerTrain, registerGrow, registerDemo];
import { registerScaling } from './scaling.ts'; extraCommands.push(registerScaling); // tokenformer scaling (cli/scaling/)
import { registerConformance } from './conformance.ts'; extraCommands.push(registerConformance); // tokenformer conformance (cli/conformance/)
import { registerGenerate } from './generate.ts'; extraCommands.push(registerGenerate); // tokenformer generate (src/decode.ts, src/sample.ts)
import { registerConvert } from './convert.ts'; extraCommands.push(registerConvert); // tokenformer convert (src/torch-bin/write.ts, src/neox/)
