// The subcommands beyond forward/grad, each registered by its own module.
import type { Command } from 'commander';
import { registerTrain } from './train.ts';

export const extraCommands: Array<(program: Command) => void> = [registerTrain];
