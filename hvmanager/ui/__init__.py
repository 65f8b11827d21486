"""The application shell: main window, actions, wizards, dialogs, theme."""
