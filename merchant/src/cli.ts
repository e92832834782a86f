/**
 * The package's `obol` command: the merchant's own commands only (`obol merchant init | serve |
 * sales | doctor | add-product`), the same ones the repository's `obol` has (merchantCommands.ts).
 */
import { ObolError } from '@obol/protocol/errors';
import { Command } from 'commander';
import { addMerchantCommands } from '../../backend/src/cli/merchantCommands.ts';

const program = new Command('obol').description('Obol micropayments: a merchant’s shop').showHelpAfterError();
addMerchantCommands(program.command('merchant').description('a shop: its folder and server, its catalogue of products, its sales'));

program.parseAsync().catch((e: unknown) => {
  if (e instanceof ObolError) console.error(`obol: ${e.name} (${e.code}): ${e.message}`);
  else console.error(`obol: ${(e as Error).message}`);
  process.exit(1);
});
