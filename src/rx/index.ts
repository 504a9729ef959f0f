export { exit$ } from './exit.js';
export { exits$ } from './exits.js';
export { run$ } from './run.js';
export { type ProcessEvent, spawn$ } from './spawn.js';
