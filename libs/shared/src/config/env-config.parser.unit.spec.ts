import { IsInt, Max, Min } from 'class-validator';
import { CommonConfig } from './common.config';
import { ConfigError, loadConfig, redactConfig } from './env-config.parser';

class ExampleConfig extends CommonConfig {
  @IsInt() @Min(1) @Max(100)
  BATCH: number = 10;
}

const base = { PORT: '3000', DATABASE_SCHEMA: 'ledger' };

describe('loadConfig', () => {
  it('builds the typed config with defaults and converted values', () => {
    const config = loadConfig(ExampleConfig, { ...base, KAFKA_BROKERS: 'a:1, b:2' });
    expect(config.PORT).toBe(3000);
    expect(config.BATCH).toBe(10);
    expect(config.KAFKA_BROKERS).toEqual(['a:1', 'b:2']);
  });

  it('converts variables whose property has a number default but no annotation', () => {
    class Tuned extends CommonConfig {
      @IsInt() @Min(1) @Max(100)
      WORKERS = 4;
    }
    expect(loadConfig(Tuned, { ...base, WORKERS: '7' }).WORKERS).toBe(7);
    expect(() => loadConfig(Tuned, { ...base, WORKERS: 'seven' })).toThrow(ConfigError);
  });

  it('refuses to load, naming each bad variable', () => {
    const error = (() => {
      try {
        loadConfig(ExampleConfig, { ...base, PORT: 'eighty', BATCH: '1000', DATABASE_URL: 'mysql://x' });
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('expected ConfigError');
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.problems.map((p) => p.variable).sort()).toEqual(['BATCH', 'DATABASE_URL', 'PORT']);
  });

  it('redacts sensitive values', () => {
    const config = loadConfig(ExampleConfig, { ...base, DATABASE_URL: 'postgres://user:pw@db/x' });
    expect(redactConfig(config)).toMatchObject({ DATABASE_URL: '[redacted]', API_KEYS: '[redacted]', PORT: 3000 });
  });
});
