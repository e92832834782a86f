import { render } from 'preact';
import '../shared/styles.css';
import { localizeDocument } from '../shared/i18n.ts';
import { Onboarding } from './view.tsx';

localizeDocument('onboarding_pageTitle');
const root = document.getElementById('app');
if (root) render(<Onboarding />, root);
