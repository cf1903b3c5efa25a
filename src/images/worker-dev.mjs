// Runs an image worker process from the TypeScript sources (tests, `node --import tsx`): the
// main process forks workers without its own flags, so tsx is registered here first. The built
// product starts worker.js directly (worker-service.ts).
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
