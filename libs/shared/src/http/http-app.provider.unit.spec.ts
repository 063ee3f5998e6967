import { ShutdownSignal } from '@nestjs/common';
import { shutdownSignals } from './http-app.provider';

describe('shutdownSignals', () => {
  const all = Object.values(ShutdownSignal);

  it('given no diagnostic flags, then every signal Nest knows shuts the service down, SIGTERM and SIGINT among them', () => {
    expect(shutdownSignals([])).toEqual(all);
    expect(shutdownSignals([], '')).toEqual(expect.arrayContaining([ShutdownSignal.SIGTERM, ShutdownSignal.SIGINT, ShutdownSignal.SIGUSR2]));
  });

  it('given a heap-snapshot signal on the command line or in NODE_OPTIONS, then that signal is left to Node', () => {
    expect(shutdownSignals(['--max-semi-space-size=32', '--heapsnapshot-signal=SIGUSR2'])).toEqual(all.filter((s) => s !== 'SIGUSR2'));
    expect(shutdownSignals([], '--max-old-space-size=384 --heapsnapshot-signal=sighup')).toEqual(all.filter((s) => s !== 'SIGHUP'));
    expect(shutdownSignals(['--heapsnapshot-signal', 'SIGUSR2'])).toEqual(all.filter((s) => s !== 'SIGUSR2'));
    expect(shutdownSignals([], '--report-on-signal --report-signal SIGQUIT')).toEqual(all.filter((s) => s !== 'SIGQUIT'));
  });

  it('given diagnostic reports on a signal, then SIGUSR2, or the one --report-signal names, is left to Node', () => {
    expect(shutdownSignals(['--report-on-signal'])).toEqual(all.filter((s) => s !== 'SIGUSR2'));
    expect(shutdownSignals(['--report-on-signal', '--report-signal=SIGQUIT'])).toEqual(all.filter((s) => s !== 'SIGQUIT'));
    expect(shutdownSignals(['--report-signal=SIGQUIT'])).toEqual(all);
  });
});
