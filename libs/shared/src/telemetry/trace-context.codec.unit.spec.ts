import { carrierFromHeaders } from './trace-context.codec';

describe('carrierFromHeaders', () => {
  const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

  it('keeps well-formed W3C trace headers and a request id', () => {
    expect(carrierFromHeaders({ traceparent, tracestate: 'congo=t61rcWkgMzE', 'x-request-id': 'req-1' })).toEqual({ traceparent, tracestate: 'congo=t61rcWkgMzE', requestId: 'req-1' });
  });

  it.each([
    ['a NUL byte', { traceparent: `${traceparent}\u0000` }],
    ['upper-case hex', { traceparent: traceparent.toUpperCase() }],
    ['another shape', { traceparent: '00-abc-1' }],
  ])('drops a traceparent with %s (and the tracestate that goes with it)', (_case, headers) => {
    expect(carrierFromHeaders({ ...headers, tracestate: 'k=v' })).toBeUndefined();
    expect(carrierFromHeaders({ ...headers, tracestate: 'k=v', 'x-request-id': 'req-1' })).toEqual({ requestId: 'req-1' });
  });

  it('drops a tracestate with a control character or over 512 characters, keeping the traceparent', () => {
    expect(carrierFromHeaders({ traceparent, tracestate: 'k=\u0000' })).toEqual({ traceparent });
    expect(carrierFromHeaders({ traceparent, tracestate: `k=${'v'.repeat(511)}` })).toEqual({ traceparent });
  });
});
