import { validateAppendRequests } from './append-request.parser';
import { EventStoreErrorCode } from './event-store.errors';
import type { AppendRequest } from './event-store.port';

const id = '3f0c1b7e-7d3a-4a55-9a51-0c8f0e3c1a11';
const ok: AppendRequest = { streamId: 'account-1', expectedVersion: 0, events: [{ id, type: 'Opened', data: {} }] };
const invalid = expect.objectContaining({ code: EventStoreErrorCode.INVALID_REQUEST });

describe('validateAppendRequests', () => {
  it('accepts well-formed requests, including empty ones', () => {
    expect(() => validateAppendRequests([ok, { streamId: 's', expectedVersion: 'any', events: [] }])).not.toThrow();
  });

  it.each<[string, AppendRequest]>([
    ['empty stream id', { ...ok, streamId: '' }],
    ['negative version', { ...ok, expectedVersion: -1 }],
    ['fractional version', { ...ok, expectedVersion: 1.5 }],
    ['non-uuid id', { ...ok, events: [{ id: 'x', type: 'A', data: {} }] }],
    ['empty type', { ...ok, events: [{ id, type: '', data: {} }] }],
    ['array data', { ...ok, events: [{ id, type: 'A', data: [] as unknown as Record<string, unknown> }] }],
  ])('rejects %s', (_, req) => {
    expect(() => validateAppendRequests([req])).toThrow(invalid);
  });

  it('rejects the same event id twice, within or across requests, whatever its case', () => {
    expect(() => validateAppendRequests([ok, { ...ok, streamId: 'account-2' }])).toThrow(invalid);
    expect(() =>
      validateAppendRequests([{ ...ok, events: [...ok.events, { id: id.toUpperCase(), type: 'A', data: {} }] }]),
    ).toThrow(invalid);
  });
});
