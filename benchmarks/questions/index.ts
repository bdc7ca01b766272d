/** Every question the harness knows, in the order a full run asks them. */
import type { Question } from '../harness/question.js';
import { codec } from './codec.js';
import { pipelined } from './pipelined.js';
import { publish } from './publish.js';
import { roundtrip } from './roundtrip.js';
import { runs } from './runs.js';
import { services } from './services.js';

export const questions: readonly Question[] = [codec, publish, roundtrip, pipelined, runs, services];
