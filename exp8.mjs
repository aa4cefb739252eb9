import { mkdtemp } from 'node:fs/promises';
import { RegistryStore } from './dist/src/registry/registry-store.js';
import { realisticEntry } from './dist/test/support/realistic-entry.js';
const dir = await mkdtemp('/work/main/.exp8-');
const store = new RegistryStore(dir);
await store.mutate((d) => { for (let i = 0; i < 10000; i++) d.set(realisticEntry(i)); });
await store.flush?.();
for (let i = 0; i < 3; i++) await store.mutate((d) => d.set({ id: `w-${i}`, path: '/m/x' }));
const { Session } = await import('node:inspector/promises');
const s = new Session(); s.connect(); await s.post('Profiler.enable'); await s.post('Profiler.setSamplingInterval', { interval: 100 }); await s.post('Profiler.start');
const t0 = performance.now();
for (let i = 0; i < 10; i++) await store.mutate((d) => d.set({ id: `x-${i}`, path: '/m/x' }));
console.log('avg', ((performance.now() - t0) / 10).toFixed(1));
const { profile: p } = await s.post('Profiler.stop');
const self = new Map(); const idx = new Map(p.nodes.map((n) => [n.id, n]));
for (let i = 0; i < p.samples.length; i++) { const n = idx.get(p.samples[i]); const k = n.callFrame.functionName + ' ' + n.callFrame.url.replace(/.*node_modules\//, '').replace('file:///work/main/', '') + ':' + n.callFrame.lineNumber; self.set(k, (self.get(k) || 0) + (p.timeDeltas[i] || 0)); }
console.log([...self].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([k, v]) => (v / 1000).toFixed(0).padStart(6) + 'ms ' + k.slice(0, 100)).join('\n'));
