// Preloaded into a CLI run by test/cli/commands.test.ts (`node --import THIS ...`): every
// module the ES module loader loads (our dist/ files, and packages imported from them)
// is appended, one URL a line, to $RECORD_ESM_FILE. The hooks run on the loader's own
// thread (module.register), so they write the file themselves.
import { register } from 'node:module';

if (process.env.RECORD_ESM_FILE) register('./record-esm-hooks.mjs', import.meta.url);
