// Runs the image worker from the TypeScript sources (tests, `node --import tsx`): Node 20 does
// not hand module hooks on to worker threads, so tsx is registered here first. The built
// product starts worker.js directly (worker-service.ts).
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
