import { render } from 'preact';
import '../shared/styles.css';
import { Onboarding } from './view.tsx';

const root = document.getElementById('app');
if (root) render(<Onboarding />, root);
