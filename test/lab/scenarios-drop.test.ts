/** Every lab scenario under the LB's drop expiry (see scenarios.ts). */
import { labScenarioTests } from './scenarios.js';

labScenarioTests('drop');
