// node run-scenario.mjs NAME '{"root": …}': runs one scenario of scenarios.mjs, prints its result as JSON.
import { scenarios } from './scenarios.mjs';

const [name, args] = process.argv.slice(2);
const result = await scenarios[name](JSON.parse(args));
process.stdout.write(JSON.stringify(result) + '\n');
