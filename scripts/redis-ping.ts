// Exits 0 when the Redis at argv[2] answers PING within a second, 1 otherwise.
import { Redis } from 'ioredis';

const redis = new Redis(process.argv[2] ?? 'redis://127.0.0.1:6379', {
  lazyConnect: true,
  connectTimeout: 1000,
  maxRetriesPerRequest: 0,
  retryStrategy: () => null,
});
try {
  await redis.connect();
  await redis.ping();
  redis.disconnect();
  process.exit(0);
} catch {
  redis.disconnect();
  process.exit(1);
}
