// The subcommands beyond forward/grad, each registered by its own module.
import type { Command } from 'commander';

export const extraCommands: Array<(program: Command) => void> = [];
