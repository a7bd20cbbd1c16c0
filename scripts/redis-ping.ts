// Exits 0 when the Redis at argv[2] answers PING within a second, 1 otherwise (for ensure-redis.sh).
import { redisAnswers } from '../src/shared/redis.ts';

process.exit((await redisAnswers(process.argv[2] ?? 'redis://127.0.0.1:6379')) ? 0 : 1);
