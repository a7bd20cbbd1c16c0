import { summarizeProfile } from './bench/profile.ts';
for (const f of process.argv.slice(2)) console.log(f, JSON.stringify(summarizeProfile(f, undefined, 15), null, 1));
