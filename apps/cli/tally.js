#!/usr/bin/env node
// `npx tally …` (package.json "bin"): the operator CLI from source, as `npm run tally -- …` runs it (ts-node with swc
// and the @tally/* paths of the root tsconfig), from any working directory of the repository.
const { resolve } = require('node:path');

process.env.TS_NODE_PROJECT = process.env.TS_NODE_PROJECT || resolve(__dirname, '../../tsconfig.json');
require('ts-node/register');
require('tsconfig-paths/register');
require('./src/main.ts');
