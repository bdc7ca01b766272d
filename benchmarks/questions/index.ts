/** Every question the harness knows, in the order a full run asks them. */
import type { Question } from '../harness/question.js';
import { codec } from './codec.js';
import { fanin } from './fanin.js';
import { headofline } from './headofline.js';
import { pipelined } from './pipelined.js';
import { publish } from './publish.js';
import { roundtrip } from './roundtrip.js';
import { runs } from './runs.js';
import { scale } from './scale.js';
import { services } from './services.js';
import { startup } from './startup.js';

export const questions: readonly Question[] = [codec, publish, roundtrip, pipelined, fanin, headofline, runs, scale, startup, services];
