import { showValue } from './dead-letter-value.view';

describe('a dead letter value as dlq show prints it', () => {
  it('keeps the exact digits of an integer beyond 2^53 (JSON.parse would round it)', () => {
    const text = '{"amount":12345678901234567891,"negative":-9007199254740993,"safe":9007199254740991,"list":[1,99999999999999999999]}';
    expect(String(JSON.parse(text).amount)).not.toBe('12345678901234567891'); // what JSON.parse alone shows
    expect(showValue(text)).toEqual({ amount: '12345678901234567891', negative: '-9007199254740993', safe: 9007199254740991, list: [1, '99999999999999999999'] });
  });

  it('leaves strings, fractions and exponents as JSON.parse reads them', () => {
    const text = '{"id":"u-12345678901234567891","quote":"a \\"99999999999999999999\\" b","fraction":1.5,"exp":1e21,"big":12345678901234567891.5}';
    expect(showValue(text)).toEqual(JSON.parse(text));
  });

  it('shows a value that is not JSON as its text, and none as null', () => {
    expect(showValue('not json {')).toBe('not json {');
    expect(showValue('{"amount":012345678901234567890}')).toBe('{"amount":012345678901234567890}'); // a leading zero is not JSON
    expect(showValue(null)).toBeNull();
  });
});
