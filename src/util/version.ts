/** xbar's version, as package.json says (results record which version computed them). */
import { readFileSync } from 'node:fs';

export const XBAR_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
