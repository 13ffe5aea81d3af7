// Loader hooks of test/helpers/record-esm.mjs: records each loaded URL, changes nothing.
import { appendFileSync } from 'node:fs';

export async function load(url, context, nextLoad) {
  appendFileSync(process.env.RECORD_ESM_FILE, `${url}\n`);
  return nextLoad(url, context);
}
