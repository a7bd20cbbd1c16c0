// The client's entry: `import { ScoringClient } from 'scoring-service/client'` in this repository,
// from 'scoring-client' where the package built from packages/client is installed.
export { ScoringClient, isTerminal } from './client.ts';
export type { BatchResult, ClientOptions, DownloadOptions, DownloadOutcome, JobList, ModelListing, SubmitOptions } from './client.ts';
export { JobEndedError, ScoringError, UnreachableError } from './errors.ts';
export type { ErrorBody } from './errors.ts';
export { contentTypeFor, UPLOAD_EXTENSIONS } from './upload.ts';
export { CSV_HEADER, formatForPath, ResultsFileError, type ResultsFormat } from './results-file.ts';
export type { FraudRecord, BulkRecord } from '../shared/schemas/record.ts';
export type { Prediction } from '../shared/schemas/prediction.ts';
export type { Routing, ShadowSummary } from '../shared/schemas/routing.ts';
export type { JobAccepted, JobStatus, JobStatusName, JobResult, ResultsPage } from '../shared/schemas/bulk-job.ts';
