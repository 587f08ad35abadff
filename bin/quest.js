#!/usr/bin/env node
import { main } from '../dist/cli/main.js';

main(process.argv).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`quest: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
