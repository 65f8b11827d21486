"""Widgets and item models. No libvirt here: views get plain data from the controllers."""
