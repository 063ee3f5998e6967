import { createHash } from 'node:crypto';
import { boundedId } from './bounded-id.model';

const digest = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 40);

describe('boundedId', () => {
  it('keeps an id that fits as it reads', () => {
    expect(boundedId('acct-1:2026-01-31T15:00:00.000Z:0:pro', 'acct-1', 'cycle')).toBe('acct-1:2026-01-31T15:00:00.000Z:0:pro');
  });

  it('given an account id of up to 64 characters, when the id does not fit, then it keeps the digest form issued before (account:kind:digest)', () => {
    const account = 'a'.repeat(64);
    const readable = `${account}:2026-01-31T15:00:00.000Z:12:${'p'.repeat(63)}`;
    expect(boundedId(readable, account, 'cycle')).toBe(`${account}:cycle:${digest(readable)}`);
  });

  it('given an account id of 65 to 128 characters, then the id is kind:digest, within 128 and still one per account and cycle', () => {
    const account = 'b'.repeat(128);
    const readable = `${account}:2026-01-31T15:00:00.000Z:12:pro`;
    const id = boundedId(readable, account, 'cycle');
    expect(id).toBe(`cycle:${digest(readable)}`);
    expect(id).toMatch(/^[A-Za-z0-9._:@-]{1,128}$/);
    expect(boundedId(`${'c'.repeat(128)}:2026-01-31T15:00:00.000Z:12:pro`, 'c'.repeat(128), 'cycle')).not.toBe(id);
  });
});
