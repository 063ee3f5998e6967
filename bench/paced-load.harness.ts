/**
 * An open-loop load generator at a steady rate: request i is due at t0 + i/rate, and its latency is measured
 * from that due time (so a stalled server or a lagging generator shows up in the figures instead of silently
 * lowering the rate — "coordinated omission" corrected, as wrk2 does).
 *
 * Why not autocannon's `overallRate`: it lets each connection send its share of a second back to back at the
 * start of that second and then pause, so "1,000 requests/s" is a burst at full speed every second, and the
 * latency it reports is that of a saturated server. wrk2 (which paces) is not installable here.
 *
 * The generator runs in a worker thread of its own, like wrk2's dedicated threads: the bench process's other
 * work and garbage collection (its Kafka and PostgreSQL clients, the figures) cannot delay a due request.
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { summarize } from './percentiles.harness';

export interface PacedRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface PacedLoadOptions {
  base: string;
  rate: number;
  seconds: number;
  /** Most requests in flight at once (keep-alive sockets); a due request waits for one, and that wait counts. */
  connections: number;
  /** Request i is requests[i % requests.length]. */
  requests: PacedRequest[];
}

export interface PacedLoadResult {
  sent: number;
  achievedRate: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  statusCodes: Record<string, number>;
  errors: number;
}

/** Runs the load in a worker thread (compiled by ts-node there too) and resolves with its figures. */
export function pacedLoad(options: PacedLoadOptions): Promise<PacedLoadResult> {
  const worker = new Worker(`require('ts-node/register'); require(${JSON.stringify(__filename)});`, { eval: true, workerData: options });
  return new Promise((resolve, reject) => {
    worker.once('message', (result: PacedLoadResult) => {
      resolve(result);
      void worker.terminate();
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`paced-load worker exited with ${code}`)));
  });
}

if (!isMainThread && workerData?.requests) void generate(workerData as PacedLoadOptions).then((result) => parentPort?.postMessage(result));

async function generate(options: PacedLoadOptions): Promise<PacedLoadResult> {
  const url = new URL(options.base);
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections });
  const total = Math.round(options.rate * options.seconds);
  const latencies: number[] = [];
  const statusCodes: Record<string, number> = {};
  let errors = 0;
  const inFlight = new Set<Promise<void>>();

  const send = (i: number, due: number): Promise<void> =>
    new Promise<void>((resolve) => {
      const { method, path, headers, body } = options.requests[i % options.requests.length];
      const req = request({ host: url.hostname, port: url.port, method, path, headers, agent }, (res) => {
        res.resume();
        res.on('end', () => {
          latencies.push(performance.now() - due);
          statusCodes[res.statusCode ?? 0] = (statusCodes[res.statusCode ?? 0] ?? 0) + 1;
          resolve();
        });
      });
      req.on('error', () => {
        errors += 1;
        resolve();
      });
      req.end(body);
    });

  const t0 = performance.now();
  const dueAt = (i: number) => t0 + (i * 1000) / options.rate;
  let sent = 0;
  while (sent < total) {
    const now = performance.now();
    // Everything due by now goes out now (a late tick catches up instead of drifting below the rate).
    for (let due = dueAt(sent); sent < total && due <= now; due = dueAt(++sent)) {
      const promise = send(sent, due);
      inFlight.add(promise);
      void promise.then(() => inFlight.delete(promise));
    }
    await sleep(1);
  }
  await Promise.all(inFlight);
  const elapsed = (performance.now() - t0) / 1000;
  agent.destroy();
  const stats = summarize(latencies);
  return { sent: total, achievedRate: total / elapsed, p50: stats.p50, p95: stats.p95, p99: stats.p99, max: stats.max, statusCodes, errors };
}

