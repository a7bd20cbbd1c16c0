// A unique key prefix on the shared Redis (REDIS_URL, as the service reads it) for one test file:
// in-process tests need no redis-server of their own, and every key they leave is removed after.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/shared/config.ts';

export type PrefixedRedis = {
  url: string;
  prefix: string;
  /** A plain client, for arranging state and for assertions. */
  client: Redis;
  /** Every key under the prefix, sorted. */
  keys: () => Promise<string[]>;
  /** Deletes every key under the prefix and disconnects. */
  close: () => Promise<void>;
};

export async function prefixedRedis(name: string): Promise<PrefixedRedis> {
  const { url } = loadConfig().redis;
  const prefix = `test-${name}-${randomUUID().slice(0, 8)}`;
  const client = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  await client.connect();

  const keys = async () => {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      found.push(...batch);
    } while (cursor !== '0');
    return found.sort();
  };

  return {
    url,
    prefix,
    client,
    keys,
    close: async () => {
      const left = await keys();
      if (left.length > 0) await client.unlink(...left);
      await client.quit();
    },
  };
}
