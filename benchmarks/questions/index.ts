/** Every question the harness knows, in the order a full run asks them. */
import type { Question } from '../harness/question.js';
import { codec } from './codec.js';

export const questions: readonly Question[] = [codec];
