# The notification "channel" is called an Outlet (docs/glossary.md): the lead sources are
# leads.Channel. The table keeps its name, so the rename touches no data.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0004_notifications'),
    ]

    operations = [
        migrations.AlterModelTable(
            name='notificationchannel',
            table='crm_notificationchannel',
        ),
        migrations.RenameModel(
            old_name='NotificationChannel',
            new_name='Outlet',
        ),
        migrations.RemoveConstraint(
            model_name='outlet',
            name='crm_notificationchannel_public_id',
        ),
        migrations.AddConstraint(
            model_name='outlet',
            constraint=models.UniqueConstraint(fields=('tenant', 'public_id'), name='crm_outlet_public_id'),
        ),
    ]
