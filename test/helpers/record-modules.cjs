// Preloaded into a daemon by test/e2e/footprint.test.ts (`node --require THIS ...`): at
// exit, writes to $RECORD_MODULES_FILE the Node flags it ran with and every CommonJS
// module it loaded (the dependencies are CommonJS: etcd3, prom-client, ioredis, ...).
'use strict';
const { writeFileSync } = require('node:fs');

const file = process.env.RECORD_MODULES_FILE;
if (file) {
  process.on('exit', () => {
    writeFileSync(file, JSON.stringify({ execArgv: process.execArgv, modules: Object.keys(require.cache) }));
  });
}
