/** Every lab scenario under the LB's rst expiry (see scenarios.ts). */
import { labScenarioTests } from './scenarios.js';

labScenarioTests('rst');
