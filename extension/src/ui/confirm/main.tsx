import { render } from 'preact';
import '../shared/styles.css';
import { ConfirmWindow } from './view.tsx';

const id = new URLSearchParams(location.search).get('prompt');
const root = document.getElementById('app');
if (root) render(<ConfirmWindow id={id} />, root);
