'use strict';
// Where a service allocates, collected objects included (what keeps its garbage collector busy), with V8's sampling
// heap profiler. Two uses:
//
//   Record, in the services a bench run starts (or any Node process):
//     SERVICE_NODE_ARGS="--require $PWD/scripts/heap-sample.cjs" HEAP_SAMPLE_WORKERS=commands BENCH_ONLY=throughput npm run bench
//   Processes whose WORKERS contain HEAP_SAMPLE_WORKERS (default: commands) sample from HEAP_SAMPLE_DELAY_MS (4000)
//   after start for HEAP_SAMPLE_MS (12000) and write HEAP_SAMPLE_DIR (/tmp)/heap-<pid>.heapprofile (Chrome DevTools
//   opens it). A process stopped earlier writes nothing: keep the window inside the phase (BENCH_EVENTS=150000 helps).
//   HEAP_SAMPLE_SURVIVORS=1 samples only the objects that survived a scavenge (what each scavenge copies: its pause).
//
//   Summarise, the sampled bytes by allocating function:
//     node scripts/heap-sample.cjs /tmp/heap-1234.heapprofile [top]
const fs = require('node:fs');
const path = require('node:path');

if (require.main === module) summarise(process.argv[2], Number(process.argv[3] ?? 30));
else record();

function record() {
  const wanted = process.env.HEAP_SAMPLE_WORKERS ?? 'commands';
  if (!(process.env.WORKERS ?? '').includes(wanted)) return;
  const inspector = require('node:inspector');
  const session = new inspector.Session();
  session.connect();
  const delayMs = Number(process.env.HEAP_SAMPLE_DELAY_MS ?? 4000);
  const sampleMs = Number(process.env.HEAP_SAMPLE_MS ?? 12000);
  const file = path.join(process.env.HEAP_SAMPLE_DIR ?? '/tmp', `heap-${process.pid}.heapprofile`);
  // HEAP_SAMPLE_SURVIVORS=1: only objects that survived a scavenge (promoted, or still alive at the end): what makes
  // scavenges long (each copies what survives) and fills the old generation.
  const survivors = process.env.HEAP_SAMPLE_SURVIVORS === '1';
  const options = { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: !survivors };
  setTimeout(() => session.post('HeapProfiler.startSampling', options), delayMs).unref();
  setTimeout(() => {
    session.post('HeapProfiler.stopSampling', (error, result) => {
      fs.writeFileSync(file, JSON.stringify(error ? { error: String(error) } : result.profile));
    });
  }, delayMs + sampleMs).unref();
}

function summarise(file, top) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
  const bytes = new Map();
  let total = 0;
  const stack = [profile.head];
  while (stack.length > 0) {
    const node = stack.pop();
    const { functionName, url, lineNumber } = node.callFrame;
    const where = `${functionName || '(anonymous)'} ${url.replace(/.*\/(node_modules|dist)\//, '')}:${lineNumber + 1}`;
    if (node.selfSize > 0) {
      bytes.set(where, (bytes.get(where) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    stack.push(...(node.children ?? []));
  }
  console.log(`${(total / 1e6).toFixed(0)} MB sampled (collected objects included, unless recorded with HEAP_SAMPLE_SURVIVORS=1)`);
  for (const [where, size] of [...bytes].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((100 * size) / total).toFixed(1).padStart(5)}%  ${where}`);
  }
}
